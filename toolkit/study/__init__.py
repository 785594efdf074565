"""sigkit.study"""
