package httpapi

import (
	"net/http"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/mylittleshopping/shop/aggregator/internal/clients/inventory"
	"github.com/mylittleshopping/shop/aggregator/internal/reply"
	"github.com/mylittleshopping/shop/services/platform/httpx"
)

// Catalogue, seller products and cart: each route passes the request on to
// inventory, and inventory's answer back (with its ETag, for If-Match).

func (a *API) ListProducts(w http.ResponseWriter, r *http.Request, p ListProductsParams) {
	a.Pages.Serve(w, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listProducts(w, r, p) })
	}))
}
func (a *API) GetProduct(w http.ResponseWriter, r *http.Request, id ID) {
	a.Pages.Serve(w, r, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.getProduct(w, r, id) })
	}))
}
func (a *API) ListMyProducts(w http.ResponseWriter, r *http.Request, p ListMyProductsParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.listMyProducts(w, r, p) })
}
func (a *API) CreateProduct(w http.ResponseWriter, r *http.Request) {
	httpx.Serve(w, r, a.createProduct)
}
func (a *API) UpdateProduct(w http.ResponseWriter, r *http.Request, id ID, p UpdateProductParams) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.updateProduct(w, r, id, p) })
}
func (a *API) ArchiveProduct(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.archiveProduct(w, r, id) })
}
func (a *API) SetStock(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.setStock(w, r, id) })
}
func (a *API) AdjustStock(w http.ResponseWriter, r *http.Request, id ID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.adjustStock(w, r, id) })
}
func (a *API) GetCart(w http.ResponseWriter, r *http.Request)   { httpx.Serve(w, r, a.getCart) }
func (a *API) ClearCart(w http.ResponseWriter, r *http.Request) { httpx.Serve(w, r, a.clearCart) }
func (a *API) SetCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.setCartLine(w, r, productID) })
}
func (a *API) RemoveCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) {
	httpx.Serve(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.removeCartLine(w, r, productID) })
}

// productsPath is the catalogue's listing; a product's page is below it.
const productsPath = "/v1/products"

// purgeProduct drops the anonymous pages a seller's write to product id
// may have changed (its page and every listing) from this instance's
// cache, whatever the write's outcome; other instances' copies expire
// within the cache's TTL.
func (a *API) purgeProduct(id ID) {
	a.Pages.Purge(productsPath, productsPath+"/"+id.String())
}

func (a *API) listProducts(w http.ResponseWriter, r *http.Request, p ListProductsParams) error {
	params := inventory.ListProductsParams{
		Q: p.Q, SellerId: p.SellerId, MinPrice: p.MinPrice, MaxPrice: p.MaxPrice, Currency: p.Currency,
		InStock: p.InStock, Sort: (*inventory.ListProductsParamsSort)(p.Sort), Limit: p.Limit, PageToken: p.PageToken,
	}
	resp, err := a.Inventory.ListProductsWithResponse(r.Context(), &params)
	return reply.Write(w, r, capCatalogue, resp, err)
}

func (a *API) getProduct(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Inventory.GetProductWithResponse(r.Context(), id)
	return reply.Write(w, r, capCatalogue, resp, err, "ETag")
}

func (a *API) listMyProducts(w http.ResponseWriter, r *http.Request, p ListMyProductsParams) error {
	params := inventory.ListMyProductsParams{Limit: p.Limit, PageToken: p.PageToken}
	resp, err := a.Inventory.ListMyProductsWithResponse(r.Context(), &params)
	return reply.Write(w, r, capSeller, resp, err)
}

func (a *API) createProduct(w http.ResponseWriter, r *http.Request) error {
	req, err := decode[NewProduct](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Inventory.CreateProductWithResponse(r.Context(), req)
	a.Pages.Purge(productsPath)
	return reply.Write(w, r, capSeller, resp, err, "ETag", "Location")
}

func (a *API) updateProduct(w http.ResponseWriter, r *http.Request, id ID, p UpdateProductParams) error {
	req, err := decode[ProductPatch](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Inventory.UpdateProductWithResponse(r.Context(), id, &inventory.UpdateProductParams{IfMatch: p.IfMatch}, req)
	a.purgeProduct(id)
	return reply.Write(w, r, capSeller, resp, err, "ETag")
}

func (a *API) archiveProduct(w http.ResponseWriter, r *http.Request, id ID) error {
	resp, err := a.Inventory.ArchiveProductWithResponse(r.Context(), id)
	a.purgeProduct(id)
	return reply.Write(w, r, capSeller, resp, err, "ETag")
}

func (a *API) setStock(w http.ResponseWriter, r *http.Request, id ID) error {
	req, err := decode[StockLevel](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Inventory.SetStockWithResponse(r.Context(), id, req)
	a.purgeProduct(id)
	return reply.Write(w, r, capSeller, resp, err, "ETag")
}

func (a *API) adjustStock(w http.ResponseWriter, r *http.Request, id ID) error {
	req, err := decode[StockAdjustment](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Inventory.AdjustStockWithResponse(r.Context(), id, req)
	a.purgeProduct(id)
	return reply.Write(w, r, capSeller, resp, err, "ETag")
}

func (a *API) getCart(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Inventory.GetCartWithResponse(r.Context())
	return reply.Write(w, r, capCart, resp, err)
}

func (a *API) clearCart(w http.ResponseWriter, r *http.Request) error {
	resp, err := a.Inventory.ClearCartWithResponse(r.Context())
	return reply.Write(w, r, capCart, resp, err)
}

func (a *API) setCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) error {
	req, err := decode[CartLineQuantity](w, r)
	if err != nil {
		return err
	}
	resp, err := a.Inventory.SetCartLineWithResponse(r.Context(), productID, req)
	return reply.Write(w, r, capCart, resp, err)
}

func (a *API) removeCartLine(w http.ResponseWriter, r *http.Request, productID openapi_types.UUID) error {
	resp, err := a.Inventory.RemoveCartLineWithResponse(r.Context(), productID)
	return reply.Write(w, r, capCart, resp, err)
}
