"""Dynamixel Protocol 2.0 serial bus backend (X series: XL330, XL430, XM430, ...)."""
