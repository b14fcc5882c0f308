# bash completion for mimic (installed as /usr/share/bash-completion/completions/mimic).
# Commands are listed here; each command's flags are read from `mimic COMMAND --help`, so the
# completion never drifts from the program.
_mimic() {
  local cur prev cmd
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  local commands="run resume rollback approve status report audit logs cancel facts inventory plan help"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
    return
  fi
  cmd=${COMP_WORDS[1]}
  case "$prev" in
    --inventory|--plan|-o|--audit|--against)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "json junit html" -- "$cur")); return ;;
    --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
  esac
  case "$cmd" in
    audit) [ "$COMP_CWORD" -eq 2 ] && [[ $cur != -* ]] &&
             { COMPREPLY=($(compgen -W "verify export" -- "$cur")); return; } ;;
    inventory) [ "$COMP_CWORD" -eq 2 ] &&
             { COMPREPLY=($(compgen -W "import list graph" -- "$cur")); return; } ;;
    plan) [ "$COMP_CWORD" -eq 2 ] &&
             { COMPREPLY=($(compgen -W "new" -- "$cur")); return; } ;;
  esac
  if [[ $cur == -* ]]; then
    local flags
    flags=$(mimic "$cmd" --help 2>/dev/null | grep -oE -- '(^|[[ ])--?[a-z][a-z-]*' |
            tr -d '[ ' | sort -u)
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _mimic mimic
