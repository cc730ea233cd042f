#!/bin/sh
# Every C source and header is written as .clang-format says (GNU braces,
# see .editorconfig).  Fix with: clang-format -i FILE.  Skipped (exit 77)
# where clang-format is not installed.
cd "$1" || exit 1
command -v clang-format >/dev/null 2>&1 || { echo "clang-format not found: skipped"; exit 77; }
files=$(find app compute tests -name '*.[ch]' | sort)
n=$(echo "$files" | wc -l)
if echo "$files" | xargs clang-format --style=file --dry-run -Werror; then
  echo "$n files as .clang-format writes them"
else
  echo "some files are not formatted: run clang-format -i on them"
  exit 1
fi
