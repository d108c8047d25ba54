// Swagger UI for the vault's own OpenAPI document. A file of its own, not an inline script,
// so the page's Content-Security-Policy can forbid inline scripts. validatorUrl null: Swagger
// UI would otherwise send the document to a third-party validator and show its badge.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
