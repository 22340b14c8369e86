"""sipserver.cachedb"""
