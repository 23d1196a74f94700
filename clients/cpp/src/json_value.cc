#include "json_value.h"

#include <string>

#include "flagsidecar/errors.h"

namespace flagsidecar {

void ToValue(const nlohmann::json& json, google::protobuf::Value* value) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      value->set_null_value(google::protobuf::NULL_VALUE);
      break;
    case nlohmann::json::value_t::boolean:
      value->set_bool_value(json.get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      value->set_number_value(json.get<double>());
      break;
    case nlohmann::json::value_t::string:
      value->set_string_value(json.get<std::string>());
      break;
    case nlohmann::json::value_t::array:
      for (const auto& item : json) ToValue(item, value->mutable_list_value()->add_values());
      value->mutable_list_value();  // an empty list is still a list
      break;
    case nlohmann::json::value_t::object:
      for (const auto& [key, item] : json.items()) {
        ToValue(item, &(*value->mutable_struct_value()->mutable_fields())[key]);
      }
      value->mutable_struct_value();
      break;
    case nlohmann::json::value_t::binary:
      throw InvalidArgument(grpc::StatusCode::INVALID_ARGUMENT, "binary JSON has no protobuf value");
  }
}

void ToStruct(const nlohmann::json& json, const char* what, google::protobuf::Struct* message) {
  if (json.is_null()) return;
  if (!json.is_object()) {
    throw InvalidArgument(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(what) + ": a JSON object is needed, not " + json.type_name());
  }
  for (const auto& [key, item] : json.items()) ToValue(item, &(*message->mutable_fields())[key]);
}

nlohmann::json FromValue(const google::protobuf::Value& value) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kBoolValue: return value.bool_value();
    case google::protobuf::Value::kNumberValue: return value.number_value();
    case google::protobuf::Value::kStringValue: return value.string_value();
    case google::protobuf::Value::kListValue: {
      auto list = nlohmann::json::array();
      for (const auto& item : value.list_value().values()) list.push_back(FromValue(item));
      return list;
    }
    case google::protobuf::Value::kStructValue: {
      auto object = nlohmann::json::object();
      for (const auto& [key, item] : value.struct_value().fields()) object[key] = FromValue(item);
      return object;
    }
    default: return nullptr;  // null_value, or a kind this client does not know: null
  }
}

}  // namespace flagsidecar
