"""sipserver.aaa"""
