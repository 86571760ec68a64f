"""Local servers tsglab starts and stops itself, always bound to 127.0.0.1: llama.cpp's OpenAI-compatible
server, an Ollama-API endpoint in front of it, and a minimal stub server for load tests."""
