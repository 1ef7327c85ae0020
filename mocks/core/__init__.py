"""Pieces shared by every mock: clock, JOSE keys, journal, redaction, HTTP helpers, server."""
