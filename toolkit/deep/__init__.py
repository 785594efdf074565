"""sigkit.deep"""
