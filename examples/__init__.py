"""Five classic durable workflows on Stepline's Python SDK, served together by ``examples.app``."""
