"""sigkit.plots"""
