"""Tessera's load benchmark: `python -m bench` (= `make bench`). Not part of the tests.

It starts gunicorn on loopback with a fixed configuration over a prepared database, drives
it from a second process (wrk when installed, else bench.load's keep-alive client) and
prints requests/s, p50/p99 latency and the ratio to a bare Flask route (bench.ceiling)
served by the same gunicorn configuration in the same run.
"""
