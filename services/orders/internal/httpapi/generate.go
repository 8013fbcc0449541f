package httpapi

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../../../openapi/orders.yaml
//go:generate go tool oapi-codegen -config components.oapi-codegen.yaml ../../../../openapi/components.yaml
