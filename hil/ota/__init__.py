"""OTA on the harness side: the update server a test offers packages from, the board driver that
follows an update on the console, and the power-cut sweep of an update."""
