// toml++'s implementation, compiled here for the binaries that link it in rather than load
// Debian's libtomlplusplus.so (mimic_link_static_deps in cmake/MimicHelpers.cmake): the same
// header, with the same TOML_HEADER_ONLY=0 the rest of the project is compiled with.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
