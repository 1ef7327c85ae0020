"""Faithful local mocks of the services an MCP token broker talks to.

Every mock is a virtual host on one loopback HTTP server (:mod:`mocks.core.server`), split the
way moto splits a service: ``models`` (state), ``responses`` (HTTP handlers), ``urls`` (routing).
"""
