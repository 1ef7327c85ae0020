# Default outbound policy of the reference broker (see broker/policy.py for the contract).
#
# No narrowing: the upstream token gets the requested scope, audience and lifetime. Examples of
# rules an operator may add (each optional; a value outside the request is a policy error):
#
#   scope := [s | some s in input.requested.scope; s != "all-apis"]
#   lifetime := 900 if input.upstream.provider == "snowflake"
#   role := "ANALYST" if "analysts" in input.user.groups
#   allow := false if input.phase == "token"; reasons contains "..." if ...
package broker.outbound

import rego.v1

default allow := true
