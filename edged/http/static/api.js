// The interactive API view: Swagger UI (served locally) on /api/v1/openapi.json.
// "Try it out" sends this tab's API key (sessionStorage) as the X-API-Key header.
"use strict";
window.addEventListener("load", () => {
  if (typeof SwaggerUIBundle === "undefined") return;
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger",
    deepLinking: false,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    validatorUrl: null,
    requestInterceptor: (req) => {
      const key = sessionStorage.getItem("edged.apiKey");
      if (key) req.headers["X-API-Key"] = key;
      return req;
    },
  });
});
