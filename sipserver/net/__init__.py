"""sipserver.net"""
