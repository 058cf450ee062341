// read_payload.cpp: a C++ client of libplada. Reads a payload, checks it against its local
// reference set's N and fingerprint, and prints the selected (index, label) pairs.
//   c++ -std=c++17 read_payload.cpp $(pkg-config --cflags --libs plada) -o read_payload
//   ./read_payload PAYLOAD N FINGERPRINT_HEX
#include <plada.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

int main(int argc, char **argv) {
    if (argc != 4) { std::fprintf(stderr, "usage: %s PAYLOAD N FINGERPRINT_HEX\n", argv[0]); return 2; }
    std::ifstream file(argv[1], std::ios::binary);
    std::vector<char> bytes{std::istreambuf_iterator<char>(file), {}};
    uint8_t fingerprint[32] = {};
    for (int i = 0; i < 32 && argv[3][2 * i] && argv[3][2 * i + 1]; i++)
        fingerprint[i] = static_cast<uint8_t>(std::stoul(std::string(argv[3] + 2 * i, 2), nullptr, 16));
    std::unique_ptr<plada_options, decltype(&plada_options_free)> options(plada_options_new(), plada_options_free);
    plada_options_set_reference(options.get(), std::stoull(argv[2]), fingerprint);  // FORMAT.md 8: refuse others

    plada_payload *raw = nullptr;
    char why[PLADA_MESSAGE_SIZE];
    int rc = plada_decode(options.get(), bytes.data(), bytes.size(), &raw, why, sizeof why);
    if (rc != PLADA_OK) { std::fprintf(stderr, "%s: %s\n", plada_result_name(rc), why); return 1; }
    std::unique_ptr<plada_payload, decltype(&plada_payload_free)> payload(raw, plada_payload_free);

    for (uint64_t j = 0; j < payload->header.count; j++) {
        uint32_t label = payload->labels[j];
        const char *name = payload->class_names ? payload->class_names[label] : "";
        std::printf("%llu\t%u\t%s\n", static_cast<unsigned long long>(payload->indices[j]), label, name);
    }
    return 0;
}
