"""Local servers tsglab starts and stops itself, always bound to 127.0.0.1: llama.cpp's OpenAI-compatible
server and an Ollama-API endpoint in front of it. (The stub server for load tests is a test helper:
``tests/stub_server.py``.)"""
