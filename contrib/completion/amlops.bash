# bash completion for amlops: commands, flags, flag values, and the
# `endpoint` subcommands.
#
# Use it on any machine where people type amlops commands:
#   install -m 0644 contrib/completion/amlops.bash \
#       /usr/share/bash-completion/completions/amlops
# or `source contrib/completion/amlops.bash` from ~/.bashrc.
# It needs nothing but bash (the bash-completion package is optional).

_amlops_commands="validate plan apply reconcile watch status endpoint host"
_amlops_global_flags="--repo --target --output --verbose -v --help --version"

# The flags of one command ("endpoint" takes its subcommand's).
_amlops_flags() {
	local target_flags="--host-dir --subscription --resource-group --workspace --arm-url"
	case $1 in
	validate) echo "--alone --verbose --output --help" ;;
	plan) echo "--base --head --live --format --detailed-exitcode --target --color --help" ;;
	apply) echo "--rev --target --yes --jobs --all --timeout --push --host-dir --help" ;;
	reconcile) echo "--once --repo --branch --push --state-dir --log-format --jobs --timeout --help $target_flags" ;;
	watch) echo "--interval --poll --debounce --backoff --drift-interval --self-heal --listen --unhealthy-after --repo --branch --push --state-dir --log-format --jobs --timeout --help $target_flags" ;;
	status) echo "--notes-ref --help" ;;
	host) echo "--state-dir --port --bind --scoring-port --python --detach --faults --retry-after --op-delay-ms --blob-endpoint --blob-container --blob-account --blob-key --help" ;;
	endpoint:list | endpoint:show) echo "--output --help $target_flags" ;;
	endpoint:invoke) echo "--request-file --deployment --output --help $target_flags" ;;
	endpoint:logs) echo "--deployment --tail --output --help $target_flags" ;;
	endpoint:credentials) echo "--show-secrets --output --help $target_flags" ;;
	endpoint:delete) echo "--deployment --yes --output --help $target_flags" ;;
	endpoint:*) echo "--help" ;;
	esac
}

# The endpoints of the target the command line names, asked of amlops
# itself (for at most three seconds; nothing when that fails).
_amlops_endpoint_names() {
	local args=() i=1 w
	while [ "$i" -lt "$COMP_CWORD" ]; do
		w=${COMP_WORDS[i]}
		case $w in
		--repo | --target | -C | -t | --host-dir | --subscription | \
		    --resource-group | --workspace | --arm-url)
			args+=("$w" "${COMP_WORDS[i + 1]}")
			i=$((i + 1)) ;;
		esac
		i=$((i + 1))
	done
	# global flags go before the command, target flags after `list`
	local glob=() tgt=() j
	for ((j = 0; j < ${#args[@]}; j += 2)); do
		case ${args[j]} in
		--repo | --target | -C | -t) glob+=("${args[j]}" "${args[j + 1]}") ;;
		*) tgt+=("${args[j]}" "${args[j + 1]}") ;;
		esac
	done
	timeout 3 "${COMP_WORDS[0]}" "${glob[@]}" -o json endpoint list \
	    "${tgt[@]}" 2>/dev/null |
	    sed -n 's/^[[:space:]]*"name":[[:space:]]*"\([^"]*\)".*/\1/p'
}

_amlops() {
	local cur prev word cmd= sub= i=1 nargs=0
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}

	# the command: the first word that is not a global flag or its value
	while [ "$i" -lt "$COMP_CWORD" ]; do
		word=${COMP_WORDS[i]}
		case $word in
		--repo | --target | --output | -C | -t | -o) i=$((i + 2)); continue ;;
		-*) i=$((i + 1)); continue ;;
		esac
		cmd=$word
		break
	done
	if [ "$cmd" = endpoint ]; then
		i=$((i + 1))
		while [ "$i" -lt "$COMP_CWORD" ]; do
			case ${COMP_WORDS[i]} in
			-*) ;;
			*) sub=${COMP_WORDS[i]}; break ;;
			esac
			i=$((i + 1))
		done
		# the endpoint's NAME given yet? (flags and their values aside)
		nargs=0
		i=$((i + 1))
		while [ -n "$sub" ] && [ "$i" -lt "$COMP_CWORD" ]; do
			case ${COMP_WORDS[i]} in
			--request-file | -f | --deployment | -d | --tail | -n | \
			    --output | -o | --host-dir | --subscription | \
			    --resource-group | --workspace | --arm-url)
				i=$((i + 1)) ;;
			-*) ;;
			*) nargs=$((nargs + 1)) ;;
			esac
			i=$((i + 1))
		done
	fi

	# values of flags
	case $prev in
	--target | -t)
		COMPREPLY=($(compgen -W "local azure" -- "$cur"))
		return 0 ;;
	--output | -o)
		COMPREPLY=($(compgen -W "table json" -- "$cur"))
		return 0 ;;
	--format)
		COMPREPLY=($(compgen -W "text json markdown" -- "$cur"))
		return 0 ;;
	--log-format)
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return 0 ;;
	--repo | -C | --host-dir | --state-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return 0 ;;
	--request-file | -f | --python)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	--base | --head | --rev)
		COMPREPLY=($(compgen -W "HEAD $(git for-each-ref --format='%(refname:short)' refs/heads refs/remotes refs/tags 2>/dev/null)" -- "$cur"))
		return 0 ;;
	--branch)
		COMPREPLY=($(compgen -W "$(git for-each-ref --format='%(refname:short)' refs/heads 2>/dev/null)" -- "$cur"))
		return 0 ;;
	--interval | --drift-interval | --debounce | --backoff | \
	    --unhealthy-after | --timeout | --port | --scoring-port | \
	    --bind | --listen | --tail | --deployment | -d | -n | --jobs | \
	    --notes-ref | --subscription | --resource-group | --workspace | \
	    --arm-url | --retry-after | --op-delay-ms | --blob-*)
		return 0 ;;
	esac

	if [ -z "$cmd" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$_amlops_global_flags" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$_amlops_commands" -- "$cur"))
		fi
		return 0
	fi
	if [ "$cmd" = endpoint ] && [ -z "$sub" ]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "--help" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "list show invoke logs credentials delete" -- "$cur"))
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		if [ "$cmd" = endpoint ]; then
			COMPREPLY=($(compgen -W "$(_amlops_flags "endpoint:$sub")" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$(_amlops_flags "$cmd")" -- "$cur"))
		fi
		return 0
	fi
	if [ "$cmd" = endpoint ] && [ "$sub" != list ] && [ "$nargs" = 0 ]; then
		COMPREPLY=($(compgen -W "$(_amlops_endpoint_names)" -- "$cur"))
		return 0
	fi
	case $cmd in
	validate) COMPREPLY=($(compgen -f -- "$cur")) ;;
	status) COMPREPLY=($(compgen -W "HEAD $(git for-each-ref --format='%(refname:short)' refs/heads refs/tags 2>/dev/null)" -- "$cur")) ;;
	esac
	return 0
}

complete -F _amlops amlops
