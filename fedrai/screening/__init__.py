"""Server-side safety screening of client updates: a probe set and the screen that scores adapters on it."""
