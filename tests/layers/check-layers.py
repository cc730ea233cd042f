#!/usr/bin/env python3
"""The layers of the tree, as docs/architecture.md draws them: which folder's
sources may include which folder's headers, and which system libraries each
may use.  Fails naming the file, the include and the rule it breaks.

usage: check-layers.py SOURCE_ROOT
"""
import os
import re
import sys

# folder -> the folders (besides itself) whose headers it may include
ALLOWED = {
    'compute/base': set(),
    'compute/vk': {'compute/base'},
    'compute/tensor': {'compute/base', 'compute/vk'},
    'compute/ref': {'compute/base'},
    'compute/ops': {'compute/base', 'compute/vk', 'compute/tensor'},
    'compute/sched': {'compute/base'},
    'compute/image': {'compute/base'},
    'compute/text': {'compute/base'},
    'compute/io': {'compute/base', 'compute/vk', 'compute/tensor'},
    'compute/nn': {'compute/base', 'compute/vk', 'compute/tensor', 'compute/ops', 'compute/io', 'compute/sched',
                   'compute/text'},
    'compute/train': {'compute/base', 'compute/vk', 'compute/tensor', 'compute/ops', 'compute/io', 'compute/sched',
                      'compute/text', 'compute/image', 'compute/nn'},
}
ENGINE = set(ALLOWED) | {'compute/train'}
ALLOWED.update({
    'app/project': ENGINE,
    'app/jobs': ENGINE | {'app/project'},
    'app/cli': ENGINE | {'app/project', 'app/jobs'},
    'app/studio': ENGINE | {'app/project', 'app/jobs'},
    'app/main': {'app/cli', 'app/studio'},
})
# system headers only some layers may use (the first path component)
WINDOW_ONLY = {'gtk', 'gdk', 'adwaita.h', 'libadwaita-1'}
SYSTEM_RULES = {
    'vulkan': {'compute/vk', 'compute/tensor', 'compute/ops', 'compute/nn', 'compute/train', 'compute/io',
               'app/cli', 'app/jobs', 'app/studio'},
}
GENERATED = {'dl-config.h', 'dl-shader-table.h', 'dl-prompt-templates-data.h', 'dl-prompt-templates-style.h',
             'dl-resources.h'}


def layer_of(rel):
    parts = rel.split('/')
    if parts[0] == 'compute':
        return 'compute/base' if len(parts) == 2 else 'compute/' + parts[1]
    return 'app/main' if len(parts) == 2 else 'app/' + parts[1]


def main():
    root = sys.argv[1]
    headers = {}
    sources = []
    for top in ('compute', 'app'):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith(('.c', '.h')):
                    rel = os.path.relpath(os.path.join(d, f), root)
                    sources.append(rel)
                    if f.endswith('.h'):
                        headers.setdefault(f, set()).add(layer_of(rel))
    problems = []
    checked = 0
    for rel in sorted(sources):
        me = layer_of(rel)
        if me not in ALLOWED:
            problems.append(f'{rel}: folder {me} has no rule in tests/layers/check-layers.py (and docs/architecture.md)')
            continue
        text = open(os.path.join(root, rel), encoding='utf-8').read()
        for m in re.finditer(r'^\s*#\s*include\s+([<"])([^>"]+)[>"]', text, re.M):
            kind, name = m.groups()
            checked += 1
            if kind == '<':
                top = name.split('/')[0]
                if top in WINDOW_ONLY and me not in ('app/studio', 'app/main'):
                    problems.append(f'{rel}: #include <{name}>: only the window (app/studio) uses GTK')
                rule = SYSTEM_RULES.get(top)
                if rule is not None and me not in rule:
                    problems.append(f'{rel}: #include <{name}>: {me} does not use {top}')
                continue
            base = os.path.basename(name)
            if base in GENERATED:
                continue
            if '/' in name:
                first = name.split('/')[0]
                target = 'compute/' + first if os.path.isdir(os.path.join(root, 'compute', first)) else \
                    'app/' + first if os.path.isdir(os.path.join(root, 'app', first)) else None
            elif os.path.exists(os.path.join(root, os.path.dirname(rel), base)):
                target = me
            else:
                owners = headers.get(base, set())
                target = next(iter(owners)) if len(owners) == 1 else None
            if target is None:
                problems.append(f'{rel}: #include "{name}": not a header of this tree')
            elif target != me and target not in ALLOWED[me]:
                problems.append(f'{rel}: #include "{name}": {me} may not use {target} '
                                f'(it may use: {", ".join(sorted(ALLOWED[me])) or "nothing else"})')
    for p in problems:
        print(p)
    print(f'{len(sources)} files, {checked} includes checked, {len(problems)} problems')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
