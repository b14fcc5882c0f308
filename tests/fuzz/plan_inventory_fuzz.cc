// libFuzzer: the plan and inventory loaders (TOML parse, every key check, the step parameter
// schema, templates) on arbitrary bytes. The first byte picks plan or inventory; a loaded pair
// is also checked against each other, as `mimic run` does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/catalogue.h"
#include "common/config/inventory.h"
#include "common/config/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const mimic::common::Inventory* inventory = [] {
    auto inv = mimic::common::LoadInventoryFromString(
        "[controller]\nplaintext = true\n[vars]\nsource_home = \"/opt/a\"\n"
        "target_home = \"/opt/b\"\n[groups.g]\n[hosts.h1]\naddress = \"127.0.0.1:1\"\n"
        "environment = \"dev\"\ngroups = [\"g\"]\n",
        "/fuzz/inventory.toml");
    return inv.ok() ? new mimic::common::Inventory(*std::move(inv)) : nullptr;
  }();
  if (data[0] & 1) {
    auto inv = mimic::common::LoadInventoryFromString(text, "/fuzz/inventory.toml");
    (void)inv;
  } else {
    auto plan = mimic::common::LoadPlanFromString(text, "/fuzz/plan.toml",
                                                  mimic::common::StepCatalogue());
    if (plan.ok() && inventory != nullptr) {
      (void)mimic::common::ValidatePlanAgainstInventory(*plan, *inventory);
    }
  }
  return 0;
}
