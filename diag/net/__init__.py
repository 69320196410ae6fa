"""diag's private network layer: one implementation per network concept, per-OS backends behind one
interface.

Checks call only this package to resolve a name (``resolve``), read the default route
(``route``), list the laptop's interfaces (``ifaces``), build and read Ethernet frames (``l2``),
scan with ARP (``arp``), ping (``icmp``), connect (``tcp``), exchange datagrams (``udp``), walk
TTLs (``ttl``), talk HTTP with one ``ca_file`` policy and a capped body (``http``), parse
``host:port`` (``addr``) and speak STUN (``stun_codec``). Inside a multi-target check, one
target's work runs under its own whole-work time bound with a safe error reason (``target``),
and device logins use Digest auth that fails cleanly on a malformed challenge (``digest``).
What differs between Linux, Windows and macOS lives in ``linux.py``, ``windows.py`` and
``darwin.py`` behind ``backend.Backend``; ``backend.current()`` picks one from
``sys.platform`` at run time, and a check reaches it through ``Context.world.net`` so that
unit tests hand it a fake.
"""
