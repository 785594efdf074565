"""sigkit.synth"""
