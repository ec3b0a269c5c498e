"""Connects booking signals to the emails they cause."""
