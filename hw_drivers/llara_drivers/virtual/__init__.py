"""Virtual servo bus: simulated Feetech / Dynamixel servos answering on a pty."""
