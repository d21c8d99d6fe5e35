"""Durable orchestrators. Deterministic: no I/O, no clock but ``context.current_utc_datetime``."""
