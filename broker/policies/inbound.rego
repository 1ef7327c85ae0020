# Default inbound policy of the reference broker (see broker/policy.py for the contract).
#
# Evaluated before every token exchange and every tool call. A request is allowed when the
# user is known (a non-empty user id) and not in the Okta group `mcp-denied`. Groups that are
# not a list are treated as unknown, and unknown means no: this policy fails closed.
package broker.inbound

import rego.v1

default allow := false

allow if {
	known_user
	known_groups
	not "mcp-denied" in input.user.groups
}

known_user if {
	is_string(input.user.id)
	input.user.id != ""
}

known_groups if is_array(input.user.groups)

reasons contains "unknown user: the request carries no user id" if not known_user

reasons contains "user groups are unknown: input.user.groups is not a list" if not known_groups

reasons contains "user is in group mcp-denied" if {
	known_groups
	"mcp-denied" in input.user.groups
}
