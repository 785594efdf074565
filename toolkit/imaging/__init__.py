"""sigkit.imaging"""
