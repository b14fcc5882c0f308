// Host patterns as Ansible has them, for --limit: which hosts of the inventory a pattern selects.
//
//   ""  all  *          every host
//   mi-dev-1            a host, a group (its hosts and its child groups' hosts) or an environment
//   mi-prod-*           a glob (* ? [..]) over host, group and environment names
//   ~mi-(a|b)\d         a regular expression (ECMAScript) over the same names
//   web,db  web:db      union (comma or colon)
//   &prod               intersection with what the other terms select
//   !mi-prod-3          exclusion
//   @failed.retry       the terms in a file, one per line (# comments, blank lines ignored),
//                       e.g. the retry file a failed rollout writes
// As in Ansible, the result is the union of the plain terms (every host when there are none),
// then narrowed by each & term, then each ! term removed, whatever the order they are written in.
#ifndef MIMIC_COMMON_CONFIG_HOST_PATTERN_H_
#define MIMIC_COMMON_CONFIG_HOST_PATTERN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/inventory.h"

namespace mimic::common {

// The hosts `pattern` selects, in inventory file order, without duplicates; pointers are into
// `inventory.hosts`. INVALID_ARGUMENT naming the first term that matches nothing (a typo never
// silently selects fewer hosts), a bad regular expression, or an @file that cannot be read
// (naming the file and line of a bad entry). An empty selection is not an error here.
absl::StatusOr<std::vector<const Host*>> SelectHosts(const Inventory& inventory,
                                                     const std::string& pattern);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_CONFIG_HOST_PATTERN_H_
