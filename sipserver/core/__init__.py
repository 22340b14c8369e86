"""sipserver.core"""
