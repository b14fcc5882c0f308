// The HL7 transport's class names. EI 7.1 (MI 1.2.0) docs name the classes of the old Carbon HL7
// bundle (org.wso2.carbon.business.messaging.hl7.message.HL7MessageBuilder, ...); MI 4.x ships
// the same classes, package for package, under org.wso2.micro.integrator.business.messaging.hl7
// (MI-FACTS.md §6; the module's packages message, transport, store, store.jpa, common:
// wso2/micro-integrator components/business-adaptors/org.wso2.micro.integrator.business.
// messaging.hl7@v4.2.0). The old names load nothing in 4.x.
#ifndef MIMIC_COMMON_MI_HL7_NAMES_H_
#define MIMIC_COMMON_MI_HL7_NAMES_H_

#include <string>
#include <string_view>

namespace mimic::common {

inline constexpr char kOldHl7Package[] = "org.wso2.carbon.business.messaging.hl7.";
inline constexpr char kHl7Package[] = "org.wso2.micro.integrator.business.messaging.hl7.";
inline constexpr char kHl7ListenerClass[] =
    "org.wso2.micro.integrator.business.messaging.hl7.transport.HL7TransportListener";
inline constexpr char kHl7SenderClass[] =
    "org.wso2.micro.integrator.business.messaging.hl7.transport.HL7TransportSender";

// `text` with every kOldHl7Package replaced by kHl7Package; *count (may be null) gets the
// number of replacements (0: `text` comes back unchanged).
std::string RewriteOldHl7ClassNames(std::string_view text, int* count);

}  // namespace mimic::common

#endif  // MIMIC_COMMON_MI_HL7_NAMES_H_
