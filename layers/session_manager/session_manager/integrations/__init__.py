"""Adapters that plug SessionManager into agent frameworks.

Each submodule imports its framework lazily or not at all: the layer itself depends on
none of them.
"""
