//! `#[namespace]`: an `impl` block's `on_<event>` methods as the handlers
//! of a namespace.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, LitStr};

/// What a method handles.
enum Role {
    Connect,
    Disconnect,
    Any,
    Event(String),
}

/// The role of `method`, taking its `#[event("..")]` attribute away;
/// `None` for methods that are not handlers.
fn role(method: &mut ImplItemFn) -> syn::Result<Option<Role>> {
    let mut named = None;
    let mut error = None;
    method.attrs.retain(|attr| {
        if !attr.path().is_ident("event") {
            return true;
        }
        match attr.parse_args::<LitStr>() {
            Ok(name) => named = Some(name.value()),
            Err(e) => error = Some(e),
        }
        false
    });
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(name) = named {
        return Ok(Some(Role::Event(name)));
    }
    let ident = method.sig.ident.to_string();
    let Some(event) = ident.strip_prefix("on_") else {
        return Ok(None);
    };
    Ok(Some(match event {
        "connect" => Role::Connect,
        "disconnect" => Role::Disconnect,
        "any" => Role::Any,
        event => Role::Event(event.to_owned()),
    }))
}

/// The registration of one handler method.
fn registration(method: &ImplItemFn, role: Role) -> syn::Result<TokenStream> {
    let name = &method.sig.ident;
    let mut inputs = method.sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        _ => {
            return Err(syn::Error::new_spanned(
                &method.sig,
                "a handler method takes `&self` first",
            ))
        }
    }
    let mut params = Vec::new();
    let mut types = Vec::new();
    for (i, input) in inputs.enumerate() {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new_spanned(input, "unexpected receiver"));
        };
        params.push(format_ident!("__param{}", i, span = Span::mixed_site()));
        types.push(&typed.ty);
    }
    let wait = method.sig.asyncness.map(|_| quote!(.await));
    let handler = quote! {
        {
            let this = ::std::sync::Arc::clone(&this);
            move |#(#params: #types),*| {
                let this = ::std::sync::Arc::clone(&this);
                async move { this.#name(#(#params),*) #wait }
            }
        }
    };
    Ok(match role {
        Role::Connect => quote!(ns.on_connect(#handler);),
        Role::Disconnect => quote!(ns.on_disconnect(#handler);),
        Role::Any => quote!(ns.on_any(#handler);),
        Role::Event(event) => quote!(ns.on(#event, #handler);),
    })
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(
            attr,
            "#[namespace] takes no arguments",
        ));
    }
    let mut block: ItemImpl = syn::parse2(item)?;
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[namespace] goes on an inherent impl block, not a trait impl",
        ));
    }
    let mut registrations = Vec::new();
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        if let Some(role) = role(method)? {
            registrations.push(registration(method, role)?);
        }
    }
    let self_ty = &block.self_ty;
    let (impl_generics, _, where_clause) = block.generics.split_for_impl();
    Ok(quote! {
        #block

        impl #impl_generics ::socketio::NamespaceClass for #self_ty #where_clause {
            fn register(self: ::std::sync::Arc<Self>, ns: &mut ::socketio::Namespace) {
                let this = self;
                #(#registrations)*
            }
        }
    })
}
