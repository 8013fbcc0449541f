package httpapi

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/inventory.yaml
//go:generate go tool oapi-codegen -config components.oapi-codegen.yaml ../../../../openapi/components.yaml
