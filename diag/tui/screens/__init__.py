"""The dashboard's screens: the main dashboard and the help over it."""
