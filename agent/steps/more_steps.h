// Factories of the steps beyond the file-copying core (file_steps.h): the registry, secondary
// user stores, the HL7 transport and the operator's own command. The catalogue in step.cc uses
// them. Like every step, each only plans (see step.h), except exec, which cannot express a
// command's effect as a change set: see exec_step.cc.
#ifndef MIMIC_AGENT_STEPS_MORE_STEPS_H_
#define MIMIC_AGENT_STEPS_MORE_STEPS_H_

#include <memory>

#include "agent/steps/step.h"

namespace mimic::agent {

// copy_registry: <MI_HOME>/registry/{config,governance,local}/** (with .metadata/*.meta) from
// the source to the target; files created or replaced when the bytes differ. Skipped when the
// source has no registry/ folder.
std::unique_ptr<Step> NewCopyRegistryStep();

// copy_secondary_userstores: repository/deployment/server/userstores/*.xml (MI 4.1+). Skipped
// when the source has none.
std::unique_ptr<Step> NewCopySecondaryUserstoresStep();

// hl7_transport: detects HL7 use in the source (MI-FACTS §6) and installs the two HL7 jars from
// param hl7_zip (wso2mi-hl7-<ver>.zip) or hl7_dir into the target's dropins/.
std::unique_ptr<Step> NewHl7TransportStep();

// exec: the operator's own command (param command), guarded by creates / removes; check mode
// never runs it. Its effects are outside the run's snapshot.
std::unique_ptr<Step> NewExecStep();

}  // namespace mimic::agent

#endif  // MIMIC_AGENT_STEPS_MORE_STEPS_H_
