"""hw_drivers"""
