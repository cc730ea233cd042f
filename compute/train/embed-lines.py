#!/usr/bin/env python3
# Turn a text file into a C array of its non-empty stripped lines (NULL-ended):
# embed-lines.py INPUT OUTPUT SYMBOL
import sys

src, out, symbol = sys.argv[1:4]
with open(src, encoding='utf-8') as f:
    lines = [l.strip() for l in f if l.strip()]
with open(out, 'w', encoding='utf-8') as f:
    f.write(f'/* generated from {src.split("/")[-1]} by embed-lines.py */\n')
    f.write(f'static const char *const {symbol}[] = {{\n')
    for l in lines:
        esc = l.replace('\\', '\\\\').replace('"', '\\"')
        f.write(f'  "{esc}",\n')
    f.write('  NULL,\n};\n')
