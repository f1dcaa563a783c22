"""HTTP plumbing every request passes through: security headers and the NUL check, CSRF,
errors, logging and request ids, metrics, health probes, client addresses, the throttle."""
