"""The site lab: a camera site built from Linux network namespaces, with a scenario per cause.

``scenarios`` holds the scenario table, ``plan`` turns scenarios into a blueprint (pure),
``runtime`` brings a blueprint up and takes labs down (root), ``command`` is `diag lab`,
``demo_command`` is `diag demo`; the emulators live in ``emulators/``. See docs/lab.md.
"""
