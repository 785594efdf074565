"""sigkit.stats"""
