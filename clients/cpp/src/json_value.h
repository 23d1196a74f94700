// nlohmann::json to and from protobuf's google.protobuf.Value and Struct, the types that carry
// contexts, details and values on the wire.
#pragma once

#include <google/protobuf/struct.pb.h>
#include <nlohmann/json.hpp>

namespace flagsidecar {

// Every JSON number becomes a double: protobuf has no other number type.
void ToValue(const nlohmann::json& json, google::protobuf::Value* value);

// An object's fields into message (null: none). Anything else throws InvalidArgument, naming
// what ("user context", "event details").
void ToStruct(const nlohmann::json& json, const char* what, google::protobuf::Struct* message);

nlohmann::json FromValue(const google::protobuf::Value& value);

}  // namespace flagsidecar
