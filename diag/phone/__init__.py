"""``diag phone``: a one-time page the customer's phone opens from a QR code.

``server`` serves the page and receives its result, ``result`` parses that result strictly,
``qr`` draws the URL for a phone camera, ``inbox`` hands the result to the ``phone`` check, and
``command`` is the CLI. The page itself is ``page.html``: one self-contained file.
"""
