# bash completion for mimic-agent (installed as /usr/share/bash-completion/completions/mimic-agent).
_mimic_agent() {
  local cur prev
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD-1]}
  case "$prev" in
    --config|--plan|--source|--target|--state-dir|--root)
      COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "--config --help --version local" -- "$cur"))
  elif [ "${COMP_WORDS[1]}" = local ]; then
    COMPREPLY=($(compgen -W "--source --target --check --diff --json --plan --state-dir --root --rollback --force" -- "$cur"))
  fi
}
complete -F _mimic_agent mimic-agent
