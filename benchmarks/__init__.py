"""Benchmarks of wagtail-bookings-vc: ``python -m benchmarks.run`` (``make bench``)."""
