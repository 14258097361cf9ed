"""What the real-time example sites share: settings, ASGI wiring, health, test fixtures."""
