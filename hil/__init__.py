"""hil — hardware-in-the-loop security harness for ESP32 boards (secure upload, secure OTA)."""

__version__ = "0.1.0"
