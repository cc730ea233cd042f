#!/usr/bin/env python3
"""Checks of the window's translations, run by `meson test` (suite gnome).

  check-i18n.py pot SOURCE_ROOT [XGETTEXT]
      po/POTFILES.in names files that exist, every source of the window that marks
      strings is in it, and xgettext makes the catalog from it (77, skipped, when
      xgettext is missing).
  check-i18n.py ui SOURCE_ROOT
      every user-visible property in ui/*.ui is translatable="yes" (unless it holds
      no words, like "0" or "×"), and every button that shows only an icon has an
      accessible label.
"""
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

# What a person reads: these properties (and menu item labels) are translated.
TEXT_PROPERTIES = {
    'label', 'title', 'subtitle', 'tooltip-text', 'tooltip-markup', 'placeholder-text', 'description',
    'dropdown-tooltip', 'heading', 'body', 'text', 'secondary-text', 'button-label',
}
ICON_BUTTONS = {'GtkButton', 'GtkToggleButton', 'GtkMenuButton'}
# the glib preset of meson's i18n module
XGETTEXT_ARGS = [
    '--from-code=UTF-8', '--add-comments=Translators',
    '--keyword=_', '--keyword=N_', '--keyword=C_:1c,2', '--keyword=NC_:1c,2', '--keyword=g_dcgettext:2',
    '--keyword=g_dngettext:2,3', '--keyword=g_dpgettext2:2c,3',
    '--flag=N_:1:pass-c-format', '--flag=C_:2:pass-c-format', '--flag=NC_:2:pass-c-format',
    '--flag=g_dngettext:2:pass-c-format', '--flag=g_strdup_printf:1:c-format',
    '--flag=g_string_printf:2:c-format', '--flag=g_string_append_printf:2:c-format',
    '--flag=g_error_new:3:c-format', '--flag=g_set_error:4:c-format',
]
MARK = re.compile(r'\b(?:_|N_|C_|NC_|g_dngettext|g_dpgettext2)\s?\(\s*(?:GETTEXT_PACKAGE\s*,\s*)?"')


def has_words(text):
    return text is not None and re.search(r'[^\W\d_]', text) is not None


def read_potfiles(root):
    with open(os.path.join(root, 'po', 'POTFILES.in'), encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def window_sources(root):
    """The window's sources (C and GtkBuilder), paths from the source root."""
    found = []
    for sub, ext in (('app/studio', '.c'), ('app/jobs', '.c'), ('ui', '.ui'), ('ui/gtk', '.ui')):
        folder = os.path.join(root, sub)
        for name in sorted(os.listdir(folder)):
            if name.endswith(ext):
                found.append(sub + '/' + name)
    return found


def marks_strings(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    return 'translatable="yes"' in text if path.endswith('.ui') else MARK.search(text) is not None


def check_pot(root, xgettext):
    problems = []
    listed = read_potfiles(root)
    for rel in listed:
        if not os.path.isfile(os.path.join(root, rel)):
            problems.append(f'po/POTFILES.in: {rel} does not exist')
    for rel in window_sources(root):
        if rel not in listed and marks_strings(os.path.join(root, rel)):
            problems.append(f'{rel} has strings to translate but is not in po/POTFILES.in')
    for rel in ('data/io.github.dreamloom.Dreamloom.desktop.in', 'data/io.github.dreamloom.Dreamloom.metainfo.xml.in',
                'data/io.github.dreamloom.Dreamloom.gschema.xml'):
        if rel not in listed:
            problems.append(f'po/POTFILES.in lacks {rel}')
    if problems:
        print('\n'.join(problems))
        return 1
    if not xgettext:
        print('xgettext not found (Debian: gettext): skipped')
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, 'dreamloom.pot')
        cmd = [xgettext, '--package-name=dreamloom', '--files-from=' + os.path.join(root, 'po', 'POTFILES.in'),
               '--directory=' + root, '--output=' + pot] + XGETTEXT_ARGS
        run = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(run.stdout + run.stderr)
        if run.returncode != 0 or not os.path.isfile(pot):
            print(f'xgettext failed ({run.returncode})')
            return 1
        with open(pot, encoding='utf-8') as f:
            catalog = f.read()
    # one string from each kind of source, so a file xgettext silently skipped shows
    expected = [
        ('the desktop file', 'Diffusion Model Trainer'),
        ('the metainfo', 'Fine-tune Stable Diffusion on your own GPU'),
        ('the settings schema', 'Preview sampling steps'),
        ('a .ui file', 'Add Your Images'),
        ('the shortcuts window', 'Keyboard shortcuts'),
        ('a C file', 'Could Not Open the Project'),
        ('a plural', 'msgid_plural "Added %u images"'),
        ('a static table (N_)', 'Learning Rate'),
    ]
    missing = [f'{what}: "{text}"' for what, text in expected if text not in catalog]
    n = catalog.count('\nmsgid "') - 1  # less the header
    print(f'{n} strings in the catalog')
    if missing:
        print('not in the catalog:\n  ' + '\n  '.join(missing))
        return 1
    return 0


def check_ui(root):
    problems = []
    n_marked = 0
    files = [f for f in window_sources(root) if f.endswith('.ui')]
    for rel in files:
        path = os.path.join(root, rel)
        tree = ET.parse(path)
        for el in tree.iter():
            if el.tag not in ('property', 'attribute') or el.get('name') not in TEXT_PROPERTIES:
                continue
            if el.tag == 'attribute' and el.get('name') != 'label':
                continue
            if not has_words(el.text):
                continue
            if el.get('translatable') == 'yes':
                n_marked += 1
            elif el.get('translatable') != 'no':  # "no": deliberately left as it is
                problems.append(f'{rel}: <{el.tag} name="{el.get("name")}">{el.text.strip()}</{el.tag}> '
                                'is not translatable="yes"')
        for obj in tree.iter('object'):
            if obj.get('class') not in ICON_BUTTONS:
                continue
            props = {p.get('name'): p.text for p in obj.findall('property')}
            if 'icon-name' not in props or has_words(props.get('label')):
                continue
            labels = [p for a in obj.findall('accessibility') for p in a.findall('property')
                      if p.get('name') == 'label' and has_words(p.text)]
            if not labels:
                problems.append(f'{rel}: the {obj.get("class")} {obj.get("id") or ""} with the icon '
                                f'{props["icon-name"]} has no accessible label')
    print(f'{n_marked} translatable strings in {len(files)} .ui files')
    if problems:
        print('\n'.join(problems))
        return 1
    return 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ('pot', 'ui'):
        print(__doc__)
        return 2
    root = argv[2]
    if argv[1] == 'pot':
        return check_pot(root, argv[3] if len(argv) > 3 and argv[3] else None)
    return check_ui(root)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
