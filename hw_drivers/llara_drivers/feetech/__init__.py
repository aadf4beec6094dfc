"""Feetech STS/SCS serial bus backend (SO-100 / SO-101 arms, STS3215)."""
